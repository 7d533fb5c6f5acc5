"""The gateway's defences, one module each (docs/security.md says what each
stops): who owns a session (``sessions``), same-origin checks (``origin``),
the client address behind trusted proxies (``client_address``), sign-in
throttling (``throttle``), sign-in records and revocation (``signins``,
``revocation``), and the ASGI layer that adds headers, refuses oversized
bodies and cross-site writes (``middleware``)."""
