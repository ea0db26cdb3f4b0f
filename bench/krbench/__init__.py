"""Side-by-side benchmarks of kohakuriver.docker against the tools a user would pick instead (issue 6)."""
