"""Optional dependencies, imported lazily with an error that names the extra.

``require("openai")`` is an import that static checkers cannot see, so the lint step
checks every ``require()`` call separately (``scripts/check_extras.py``): the module's
distribution must be declared in the extra that :func:`extra_for` names for it, the
same extra the error message tells the user to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from fmf_spark.errors import MissingExtraError

#: import name -> the extra that installs it
EXTRAS: dict[str, str] = {
    "pyspark": "spark",
    "delta": "spark",
    "pyarrow": "spark",
    "boto3": "aws",
    "botocore": "aws",
    "azure.identity": "azure",
    "azure.keyvault.secrets": "azure",
    "openai": "openai",
    "requests": "sharepoint",
    "cryptography": "sharepoint",
    "pytesseract": "ocr",
    "PIL": "ocr",
    "mlflow": "mlflow",
    "databricks.sdk": "databricks",
    "psycopg": "postgres",
    "pypdf": "processing",
    "openpyxl": "processing",
    "charset_normalizer": "processing",
    "bpe_openai": "processing",
    "lxml": "processing",
    "docx": "processing",
    "pptx": "processing",
    "olefile": "processing",
    "striprtf": "processing",
    "opentelemetry": "otel",
    "plotly": "report",
    "grpc": "connect",
    "grpc_status": "connect",
    "google.rpc": "connect",
    "zstandard": "connect",
}


def extra_for(module: str, extra: str | None = None) -> str:
    """The extra that installs ``module``: ``extra`` if given, else :data:`EXTRAS`."""
    return extra or EXTRAS.get(module) or EXTRAS.get(module.split(".")[0], "local")


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` with the pip command.

    Example:
        >>> boto3 = require("boto3")  # doctest: +SKIP
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"'{module}' is not installed ({exc.msg})",
            hint=f"pip install 'fmf-spark[{extra_for(module, extra)}]'",
        ) from None
