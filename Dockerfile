FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir .

# The gateway runs as an unprivileged user; the database is given by DATABASE_URL.
RUN useradd --create-home gateway
USER gateway
EXPOSE 8000
ENTRYPOINT ["loyalty-gateway"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
