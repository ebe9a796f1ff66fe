# Slim runtime image (see README "Docker"):
#   docker run -e REELCART_DATABASE_URL=postgresql+asyncpg://… -e REELCART_MERCHANT_CONFIG=… \
#     -v reelcart-data:/data -p 8000:8000 reelcart
# Production settings are enforced: it refuses to start on the demo's defaults (sandbox
# payments, the demo merchant profile, SQLite, …) with one line saying what to set.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    REELCART_ENVIRONMENT=production \
    REELCART_FEEDS_DIR=/data/feeds

WORKDIR /app
# Dependencies first, exactly as locked (every file hash-checked): this layer is rebuilt only
# when the lock changes. Regenerate it with scripts/lock.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

COPY pyproject.toml README.md ./
COPY api ./api
COPY checkout ./checkout
COPY feeds ./feeds
COPY models ./models
COPY orders ./orders
COPY payments ./payments
COPY webhooks ./webhooks
COPY fulfillment ./fulfillment
COPY attribution ./attribution
COPY protocols ./protocols
COPY idempotency ./idempotency
COPY payment_events ./payment_events
COPY etsy ./etsy
COPY catalog ./catalog
COPY commissions ./commissions
COPY links ./links
COPY creatives ./creatives
# ReelCart itself, without touching the locked dependencies.
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /data --no-create-home reelcart \
    && mkdir -p /data/feeds && chown -R reelcart /data

# State the processes write (built feeds, served at /feeds/…) lives here, writable by the
# service user; mount a volume to keep it across containers. Everything else is in the
# database.
VOLUME ["/data"]
USER reelcart

EXPOSE 8000
# Ready = the database answers (/readyz). The start period covers the migration that
# `serve` runs once before listening.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"
# uvicorn stops gracefully on SIGTERM (in-flight requests finish, 15 s cap).
CMD ["reelcart", "serve", "--host", "0.0.0.0", "--port", "8000"]
