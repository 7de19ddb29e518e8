"""Reading identity documents: MRZ (ICAO Doc 9303) by OCR, document checks, portrait cut-out.

``mrz`` layouts, check digits, parsing · ``correction`` OCR confusions undone by field types and
check digits · ``locate`` the MRZ band in a photo or frame · ``glyphs`` the OCR-B character grid
· ``ocr`` tesseract fused with the grid · ``portrait`` the holder's photo · ``reader`` all of it
on one image, and a tenant's document policy · ``consensus`` several reads of one document
combined (the fields without a check digit voted).
"""
