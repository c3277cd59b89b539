"""What many tests share.

api.py          login() / login_token() in process, live_login() over HTTP, send(), client_with()
servers.py      gunicorn(): the one way to start the server (tests and bench/), free_port()
browser.py      chromium(): headless Chromium for the browser tests, wait_for_heading(), axe_violations()
smtp.py         smtp_sink(): a real SMTP server (aiosmtpd) that collects what it is sent
contract.py     the envelopes and paths of ../shared/CONTRACT.md, written out
flask_server.py the Flask server's schema and hashes, for legacy_flask's tests
"""
