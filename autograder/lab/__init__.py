"""The lab's own tooling: MNIST, work profiles, the student template, the reference run, the demo class, the
grader's digit classifier."""
