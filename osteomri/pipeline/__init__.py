"""Exam and cohort pipelines: the only layer that knows which stages exist."""

from osteomri.pipeline.exam import run_exam
from osteomri.pipeline.spec import ExamResult, ExamSpec

__all__ = ["ExamSpec", "ExamResult", "run_exam"]
