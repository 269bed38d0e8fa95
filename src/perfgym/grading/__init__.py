"""The grader: static checks, sandboxed timed runs, equivalence probes, GradeReport."""

from perfgym.grading.grader import check_public, grade
from perfgym.grading.report import Check, GradeReport

__all__ = ["Check", "GradeReport", "check_public", "grade"]
