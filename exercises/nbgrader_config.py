# nbgrader course configuration: this directory (exercises/) is the course root.
# `make release` (python -m softgrad.grading release) generates release/<assignment>/ from source/;
# `make grade SUBMISSIONS=dir` autogrades with the same configuration.
c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)
c.CourseDirectory.course_id = "softgrad"
