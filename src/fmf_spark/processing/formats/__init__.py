"""One module per document format, each registering its loader in ``LOADERS``.

Libraries, chosen for licence (the wheel is Apache-2.0: no GPL/AGPL) and upkeep:

- ``docx``: python-docx (MIT), for its style, numbering and table model; ``docx2txt``
  and ``mammoth`` (BSD) lose list levels or need a second HTML pass.
- ``pptx``: python-pptx (MIT), the one maintained reader of PowerPoint's XML.
- ``email``: the standard library's ``email`` (policy ``default``) for ``.eml``.
- ``msg``: ``olefile`` (BSD) and the [MS-OXMSG] property streams read here;
  ``extract-msg`` is GPL-3.0, so it cannot ship in this wheel.
- ``odf``: OpenDocument's ``content.xml`` read with lxml (BSD); ``odfpy`` (last release
  2020) builds its own slower DOM of the same XML.
- ``rtf``: ``striprtf`` (BSD-3), a small maintained RTF-to-text converter.
- ``epub``: the zip, its OPF spine and our own XHTML converter; ``ebooklib`` is AGPL-3.0.
- ``structured``: JSON/NDJSON (stdlib) and XML (lxml).
- ``ole``: legacy binary Office files (``.doc``/``.xls``/``.ppt``) recognised by their
  OLE2 streams (``olefile``) and refused with the conversion to run.
- ``archive``: ZIP (stdlib ``zipfile``), members handed out as child documents.
- ``tiff``: multi-page TIFF (Pillow) through OCR.
"""
