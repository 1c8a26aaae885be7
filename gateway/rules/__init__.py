"""The local rules engine: rule files, the sans-IO evaluator and the daemon component.

See README.md in this folder for the rule file format.
"""
