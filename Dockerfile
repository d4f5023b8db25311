# The Todo API under gunicorn (gunicorn.conf.py). Build, migrate and run: README, "Deploy".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies in their own layer: rebuilt only when requirements.txt changes. It is the lock: every
# package, transitive ones too, at one version with its hashes (README, "Dependencies").
COPY requirements.txt .
RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt --require-hashes --no-deps

COPY . .

# Hashed, compressed static files for WhiteNoise. Settings refuse to load without these two
# values; they are used for this step only and are not kept in the image.
RUN DJANGO_SECRET_KEY=collectstatic-only DJANGO_ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput

RUN useradd --system --user-group --uid 10001 --no-create-home --home-dir /app app
USER app

EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=2)"]

# Exec form: gunicorn is PID 1 and gets SIGTERM itself (graceful stop). Migrations are a
# separate release step, never run here: docker run --rm IMAGE python manage.py migrate --noinput
# The reminder worker is the same image with another command (it opens no port, so no HEALTHCHECK):
# docker run --no-healthcheck IMAGE python manage.py run_worker
CMD ["gunicorn", "-c", "gunicorn.conf.py", "todo_api.wsgi"]
