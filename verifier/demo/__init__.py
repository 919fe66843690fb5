"""`verifier demo`: the main job on a sample cohort cut from the face set or the small demo set the package ships."""
