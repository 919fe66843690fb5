"""The duplicate-face sweep: photo import, the FAISS index, the sweep itself and its report."""
