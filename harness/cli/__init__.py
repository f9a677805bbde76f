"""Command-line stage: the tasks' shared behaviour and what they print.

In: the options of an invoke task (tasks.py) and what the stages below return (a run's
table, a comparison, the list of runs). Out: the task's behaviour common to every task
(`--help` whatever the arguments, one vocabulary of options, the user's defaults) and
what it prints or writes for people and for programs: the summary after a bench in the
terminal, JSON and GitHub-flavoured markdown of that summary and of a comparison, the
list of runs. The top of the pipeline: it may import any stage, and none imports it.
"""
