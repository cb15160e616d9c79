"""Who is asking and what they may see and do: actors, tokens, phone sign-in, policy, scope."""

from mobilize.auth.actor import ANONYMOUS, Actor, Binding

__all__ = ["ANONYMOUS", "Actor", "Binding"]
