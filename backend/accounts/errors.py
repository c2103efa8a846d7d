"""Errors of the accounts domain."""

from backend.core.errors import Conflict, Unauthenticated


class BadCredentials(Unauthenticated):
    code = "bad_credentials"
    title = "Wrong username or password"


class UsernameTaken(Conflict):
    code = "username_taken"
