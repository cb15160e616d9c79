FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mobilize ./mobilize
COPY geo ./geo
COPY migrations ./migrations
COPY graphql ./graphql
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["mobilize", "serve", "--host", "0.0.0.0", "--port", "8000"]
