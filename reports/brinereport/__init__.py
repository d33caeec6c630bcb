"""brine's HTML report builders (reports/build.py is the command).

Standard library only, Python 3.6+. Every page is one self-contained HTML
file; everything taken from a run, a corpus or a findings folder is
untrusted text and goes through html.esc() / html.attr().
"""
