"""Photo specification and quality checks, profiles, ID framing, the fixer, rosters and their reconciliation and reports."""
