# Slim runtime image: `docker run -e REELCART_DATABASE_URL=postgresql+asyncpg://… reelcart`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    REELCART_ENVIRONMENT=production

WORKDIR /app
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
RUN pip install . && useradd --system --uid 10001 reelcart
USER reelcart

EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz').status == 200 else 1)"
# uvicorn stops gracefully on SIGTERM (in-flight requests finish, 15 s cap).
CMD ["reelcart", "serve", "--host", "0.0.0.0", "--port", "8000"]
