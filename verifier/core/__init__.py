"""Bytes to a decision: decode, detect (YuNet, SCRFD), align, embed, score; model packs, runtime, graph repair.

Knows nothing of the store, reports, the CLI or HTTP; imports only verifier.common.
"""
