FROM python:3.11-slim
WORKDIR /app
# A font with Chinese glyphs, so report pictures carry Chinese labels.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY mobilize ./mobilize
COPY geo ./geo
COPY migrations ./migrations
COPY graphql ./graphql
RUN pip install --no-cache-dir ".[ops]"
EXPOSE 8000
CMD ["mobilize", "serve", "--host", "0.0.0.0", "--port", "8000"]
