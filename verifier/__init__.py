"""verifier: face-comparison identity verification for student-records offices."""

__version__ = "0.1.0"
