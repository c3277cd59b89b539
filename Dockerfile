# The auth server's image: gunicorn serving authserver.wsgi with production rules (DEBUG off),
# static files collected at build. Configure it with environment variables (README,
# "Configuration"); docker-compose.yml runs it for staging with PostgreSQL, Redis and a mail catcher.
#
#   docker build -t authserver .
#   docker run --env-file .env -p 8000:8000 authserver
#   docker run --env-file .env authserver python manage.py migrate

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with the runtime requirements --------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /build
# The requirements alone first: this layer is rebuilt when they change, not when the code does.
COPY requirements.txt .
# The runtime requirements are the lines above "# Tests"; the test tools stay out of the image.
RUN sed '/^# Tests/,$d' requirements.txt > runtime-requirements.txt \
 && pip install -r runtime-requirements.txt

# --- runtime ----------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DEBUG=false

# The server runs as this user, which owns nothing: the code and the static files stay root's.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
COPY . .
# Bytecode now, since the server's user cannot write it. Static files with hashed, compressed
# names (DEBUG is off); the settings need a strong SECRET_KEY and a named email backend to load
# with DEBUG off: a random key, which signs nothing and is not kept in the image, and the console,
# since collectstatic sends no email.
RUN python -m compileall -q authserver core accounts legacy_flask \
 && SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" EMAIL_BACKEND=console \
    python manage.py collectstatic --noinput --verbosity 0

USER app
EXPOSE 8000

# /status answers 200 when the database (and CACHE_URL's cache) answer. The Host header is the
# first of ALLOWED_HOSTS, so that the check passes Django's host validation.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request as r; host = os.environ.get('ALLOWED_HOSTS', 'localhost').split(',')[0].strip().lstrip('.*') or 'localhost'; r.urlopen(r.Request('http://127.0.0.1:%s/status' % os.environ.get('PORT', '8000'), headers={'Host': host}), timeout=4)"

# Workers from the CPU count, access log on stdout, graceful stop: see gunicorn.conf.py.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "authserver.wsgi:application"]
