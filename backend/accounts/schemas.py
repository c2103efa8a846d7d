"""Bodies of the accounts API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from backend.accounts.models import Role
from backend.core.schemas import InputModel


class LoginIn(InputModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role
    phone: str | None
    unit_code: str | None = None
    department_code: str | None = None


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires")
    user: UserOut


class UserCreate(InputModel):
    username: str = Field(min_length=1, max_length=64, examples=["zhangwei"])
    password: str = Field(min_length=8, max_length=256)
    role: Role
    display_name: str | None = Field(default=None, max_length=100, examples=["张伟"])
    phone: str | None = Field(default=None, max_length=40)
    unit_code: str | None = Field(
        default=None,
        pattern=r"^[0-9]{6}(?:[0-9]{3}){0,2}$",
        description="Org unit: district (6 digits), street (9) or community (12); none: city-wide",
        examples=["330106001"],
    )


class UnitIn(InputModel):
    unit_code: str | None = Field(pattern=r"^[0-9]{6}(?:[0-9]{3}){0,2}$")


class UserAdminOut(UserOut):
    is_active: bool


class UserList(BaseModel):
    items: list[UserAdminOut]
