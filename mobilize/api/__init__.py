"""The GraphQL API: Strawberry schema on FastAPI. Resolvers are thin; rules live in services."""
