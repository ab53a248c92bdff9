"""The web console on a node's management port (``/console/``).

Server-rendered pages for the operator (role ``admin``), the auditor
(``auditor``) and residents (a signed citizen link), in English and Japanese;
no script runs in the browser. See docs/console.md.
"""
