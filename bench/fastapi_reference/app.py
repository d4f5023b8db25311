"""The Todo API's task endpoints as a FastAPI + SQLModel (async) starter writes them: the reference that
bench/run.py --targets api,baseline,fastapi measures the API's server CPU per request against.

Deliberately plain, the way the FastAPI and SQLModel tutorials and the usual starter templates do it:
  - SQLModel table models of its own (fastapi_user, fastapi_task) on an async engine (asyncpg), one
    AsyncSession per request from a dependency, a pool of 10 connections per worker (no overflow: at the
    benchmark's 1000 users SQLAlchemy's default 10 more opened and closed a connection for most requests,
    486 sessions in a 20 s run, which hid their database CPU from the report; server CPU per request
    moved within the noise either way);
  - Bearer JWT verified with PyJWT: jwt.PyJWKClient (its JWK set cached for 5 minutes) called directly in
    the async dependency, as Auth0's FastAPI sample does: the fetch blocks the event loop, but only on a
    cache miss (once per worker per 5 minutes), so no thread hop on every request;
  - the user got by `sub` with a SELECT on every request, created on first sight;
  - a list is a COUNT query plus a page query; create and update commit then refresh the row, as the
    SQLModel docs do; an update or delete first loads the row with session.get;
  - response models validated and serialized by FastAPI (pydantic), errors as FastAPI's {"detail": ...}.

Settings from the environment only: DATABASE_URL (postgres://...) and BETTER_AUTH_URL (its origin is the
tokens' issuer and audience; the JWKS is at /api/auth/jwks). `python app.py create-tables` creates the
tables once, before gunicorn starts its workers (-k uvicorn_worker.UvicornWorker app:app).
"""

import asyncio
import os
import re
import sys
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit

import jwt
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import DateTime
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import Field, SQLModel, col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

DATABASE_URL = re.sub(r"^postgres(ql)?://", "postgresql+asyncpg://", os.environ["DATABASE_URL"])
AUTH_URL = urlsplit(os.environ["BETTER_AUTH_URL"])
ISSUER = f"{AUTH_URL.scheme}://{AUTH_URL.netloc}"

engine = create_async_engine(DATABASE_URL, pool_size=10, max_overflow=0)
jwks_client = jwt.PyJWKClient(f"{os.environ['BETTER_AUTH_URL'].rstrip('/')}/api/auth/jwks")


def utcnow() -> datetime:
    return datetime.now(UTC)


class User(SQLModel, table=True):
    __tablename__ = "fastapi_user"
    id: int | None = Field(default=None, primary_key=True)
    sub: str = Field(unique=True, max_length=255)
    email: str = ""
    name: str = ""


class TaskBase(SQLModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = ""


class Task(TaskBase, table=True):
    __tablename__ = "fastapi_task"
    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="fastapi_user.id", index=True)
    completed: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class TaskCreate(TaskBase):
    pass


class TaskUpdate(SQLModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    completed: bool | None = None


class TaskPublic(TaskBase):
    id: int
    completed: bool
    created_at: datetime
    updated_at: datetime


class TaskPage(SQLModel):
    count: int
    next: str | None
    previous: str | None
    results: list[TaskPublic]


async def get_session():
    async with AsyncSession(engine, expire_on_commit=False) as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]


async def current_user(
    credentials: Annotated[HTTPAuthorizationCredentials, Depends(HTTPBearer())], session: Session
) -> User:
    try:
        signing_key = jwks_client.get_signing_key_from_jwt(credentials.credentials)
        claims = jwt.decode(
            credentials.credentials,
            signing_key.key,
            algorithms=["EdDSA"],
            issuer=ISSUER,
            audience=ISSUER,
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.PyJWTError as error:
        unauthorized = status.HTTP_401_UNAUTHORIZED
        raise HTTPException(unauthorized, "Invalid token", headers={"WWW-Authenticate": "Bearer"}) from error
    user = (await session.exec(select(User).where(User.sub == claims["sub"]))).first()
    if user is None:
        user = User(sub=claims["sub"], email=claims.get("email") or "", name=claims.get("name") or "")
        session.add(user)
        await session.commit()
        await session.refresh(user)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


@asynccontextmanager
async def lifespan(app: FastAPI):
    yield
    await engine.dispose()


app = FastAPI(title="Todo API (FastAPI + SQLModel reference)", lifespan=lifespan)


async def own_task(session: AsyncSession, user: User, task_id: int) -> Task:
    task = await session.get(Task, task_id)
    if task is None or task.owner_id != user.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Task not found")
    return task


@app.get("/api/v1/tasks", response_model=TaskPage)
async def list_tasks(
    request: Request,
    session: Session,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
):
    mine = Task.owner_id == user.id
    count = (await session.exec(select(func.count()).select_from(Task).where(mine))).one()
    page = select(Task).where(mine).order_by(col(Task.created_at).desc(), col(Task.id).desc())
    tasks = (await session.exec(page.offset(offset).limit(limit))).all()
    url = request.url
    return TaskPage(
        count=count,
        next=str(url.include_query_params(offset=offset + limit)) if offset + limit < count else None,
        previous=str(url.include_query_params(offset=max(0, offset - limit))) if offset > 0 else None,
        results=tasks,
    )


@app.post("/api/v1/tasks", response_model=TaskPublic, status_code=status.HTTP_201_CREATED)
async def create_task(body: TaskCreate, session: Session, user: CurrentUser):
    task = Task.model_validate(body, update={"owner_id": user.id})
    session.add(task)
    await session.commit()
    await session.refresh(task)
    return task


@app.get("/api/v1/tasks/{task_id}", response_model=TaskPublic)
async def get_task(task_id: int, session: Session, user: CurrentUser):
    return await own_task(session, user, task_id)


@app.patch("/api/v1/tasks/{task_id}", response_model=TaskPublic)
async def update_task(task_id: int, body: TaskUpdate, session: Session, user: CurrentUser):
    task = await own_task(session, user, task_id)
    task.sqlmodel_update(body.model_dump(exclude_unset=True), update={"updated_at": utcnow()})
    session.add(task)
    await session.commit()
    await session.refresh(task)
    return task


@app.delete("/api/v1/tasks/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_task(task_id: int, session: Session, user: CurrentUser):
    await session.delete(await own_task(session, user, task_id))
    await session.commit()


async def create_tables():
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
    await engine.dispose()


if __name__ == "__main__":
    if sys.argv[1:] != ["create-tables"]:
        sys.exit("usage: python app.py create-tables")
    asyncio.run(create_tables())
