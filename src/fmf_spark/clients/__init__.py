"""Clients of remote services shared by several layers (AWS, Microsoft Graph, ADLS).

A shared base like :mod:`fmf_spark.errors`: it imports no layer. Each client takes
plain values (no config model) and reports failures in the caller's error family.
"""
