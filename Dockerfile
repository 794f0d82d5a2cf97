# SIS as a single container: gunicorn serves the app; the scheduler runs in-process behind a database lease.
FROM python:3.11-slim
WORKDIR /srv/sis
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
ENV SIS_INSTANCE_PATH=/srv/sis/instance HOST=0.0.0.0 PORT=8000
VOLUME ["/srv/sis/instance"]
EXPOSE 8000
CMD ["sh", "-c", "flask --app app db upgrade && exec gunicorn --bind ${HOST}:${PORT} --workers 4 --threads 4 --worker-class gthread 'app:create_app()'"]
