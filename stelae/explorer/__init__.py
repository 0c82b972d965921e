"""The browser explorer's static files (index.html, *.js, style.css); served by
:mod:`stelae.server.explorer`. No Python code lives here."""
