"""The evaluation report: PNG figures (figures.py) and report.html (html.py)."""
