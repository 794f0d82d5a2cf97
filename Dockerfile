# SIS as a single container: `python -m stoloto.container` migrates (serialized), then gunicorn serves the app
# (gunicorn.conf.py); SIS_DEMO=1 adds the built-in Stoloto and SET Centrum test stands next to it.
# The base is an argument so the image can be built where python:3.11-slim cannot be pulled (.ci/container-setup).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
RUN python -m venv /opt/sis-venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/sis-venv/bin/pip install --no-cache-dir --disable-pip-version-check -q \
    --require-hashes -r /tmp/requirements.txt

FROM ${BASE_IMAGE}
# A fixed uid: a bind-mounted instance folder is made writable with `chown 10001`.
RUN useradd --system --uid 10001 --user-group --home-dir /srv/sis --no-create-home sis \
    && mkdir -p /srv/sis/instance && chown sis:sis /srv/sis/instance && chmod 0700 /srv/sis/instance
COPY --from=build /opt/sis-venv /opt/sis-venv
WORKDIR /srv/sis
COPY app.py gunicorn.conf.py requirements.txt ./
COPY admin_views admin_views
COPY docs/admin-guide.ru.md docs/admin-guide.ru.md
COPY jobs jobs
COPY migrations migrations
COPY static static
COPY stoloto stoloto
COPY templates templates
COPY translations translations
ENV PATH=/opt/sis-venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    SIS_INSTANCE_PATH=/srv/sis/instance HOST=0.0.0.0 PORT=8000
USER sis
VOLUME ["/srv/sis/instance"]
EXPOSE 8000
# No curl in slim images: Python asks /healthz (the process serves; no database, no login).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
CMD ["python", "-m", "stoloto.container"]
