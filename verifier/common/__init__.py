"""Helpers every layer uses: reason codes, settings, the output writer, spreadsheet cells, parallel maps, fonts, the face set.

The bottom layer: nothing here imports another verifier package.
"""
