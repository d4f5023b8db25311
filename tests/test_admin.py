"""Staff manage tasks and users in the Django admin with Django's own login; the API stays JWT-only."""

import re
from http import HTTPStatus

import pytest
from django.test import Client
from django.utils import timezone

from authbridge.models import User
from tasks.models import Priority, Tag, Task

PASSWORD = "a-long-staff-password-1"


@pytest.fixture
def alice_user(db):
    return User.objects.create(username="alice-sub", sub="alice-sub", email="alice@example.com", name="Alice")


@pytest.fixture
def bob_user(db):
    return User.objects.create(username="bob-sub", sub="bob-sub", email="bob@example.com", name="Bob")


@pytest.fixture
def tasks(alice_user, bob_user):
    return {
        "groceries": Task.objects.create(owner=alice_user, title="Buy groceries", description="milk, eggs"),
        "taxes": Task.objects.create(owner=alice_user, title="File taxes", completed=True),
        "garden": Task.objects.create(owner=bob_user, title="Water the garden", description="tomatoes"),
    }


@pytest.fixture
def staff(db):
    """A signed-in superuser (test_staff_sign_in_with_the_login_form covers the form itself)."""
    client = Client()
    client.force_login(
        User.objects.create(username="admin", email="admin@example.com", is_staff=True, is_superuser=True)
    )
    return client


def titles_listed(response):
    return set(re.findall(r'<th class="field-title"><a href="[^"]+">([^<]+)</a>', response.content.decode()))


def test_staff_sign_in_with_the_login_form(db):
    User.objects.create_superuser(username="admin", email="admin@example.com", password=PASSWORD)
    client = Client()
    assert client.get("/admin/login/").status_code == HTTPStatus.OK

    response = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": PASSWORD})

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == HTTPStatus.OK


def test_the_admin_index_lists_tasks_and_users(staff):
    response = staff.get("/admin/")

    assert response.status_code == HTTPStatus.OK
    assert b'href="/admin/tasks/task/"' in response.content
    assert b'href="/admin/authbridge/user/"' in response.content


def test_anonymous_visitors_are_sent_to_the_login_page(db):
    response = Client().get("/admin/tasks/task/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/admin/login/")


def test_the_task_list_shows_every_users_tasks_with_their_columns(staff, tasks):
    response = staff.get("/admin/tasks/task/")

    assert response.status_code == HTTPStatus.OK
    assert titles_listed(response) == {"Buy groceries", "File taxes", "Water the garden"}
    html = response.content.decode()
    for column in (
        "column-title",
        "column-owner",
        "column-priority",
        "column-due_at",
        "column-tag_list",
        "column-completed",
        "column-created_at",
        "column-updated_at",
    ):
        assert column in html
    assert "alice@example.com" in html


def test_the_task_list_filters_by_completed(staff, tasks):
    response = staff.get("/admin/tasks/task/", {"completed__exact": "1"})

    assert response.status_code == HTTPStatus.OK
    assert titles_listed(response) == {"File taxes"}


@pytest.mark.parametrize("owner", ["alice@example.com", "ALICE@example.com", "alice-sub"])
def test_the_task_list_filters_by_owner_email_or_better_auth_id(staff, tasks, owner):
    response = staff.get("/admin/tasks/task/", {"owner": owner})

    assert response.status_code == HTTPStatus.OK
    assert titles_listed(response) == {"Buy groceries", "File taxes"}


def test_the_owner_filter_is_a_search_box_not_a_list_of_every_user(staff, tasks):
    response = staff.get("/admin/tasks/task/", {"completed__exact": "0", "owner": "bob@example.com"})

    html = response.content.decode()
    owner_filter = re.search(r'<form method="get" class="owner-filter">.*?</form>', html, re.S).group()
    assert 'name="owner" value="bob@example.com"' in owner_filter
    assert '<input type="hidden" name="completed__exact" value="0">' in owner_filter
    assert "alice@example.com" not in owner_filter
    assert titles_listed(response) == {"Water the garden"}


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("groceries", {"Buy groceries"}),
        ("tomatoes", {"Water the garden"}),
        ("bob@example.com", {"Water the garden"}),
        ("alice-sub", {"Buy groceries", "File taxes"}),
    ],
)
def test_the_task_list_searches_title_description_owner_email_and_sub(staff, tasks, term, expected):
    response = staff.get("/admin/tasks/task/", {"q": term})

    assert response.status_code == HTTPStatus.OK
    assert titles_listed(response) == expected


def test_the_task_list_drills_down_by_creation_date(staff, tasks):
    today = timezone.now()
    response = staff.get(
        "/admin/tasks/task/", {"created_at__year": today.year, "created_at__month": today.month}
    )

    assert response.status_code == HTTPStatus.OK
    assert titles_listed(response) == {"Buy groceries", "File taxes", "Water the garden"}


def test_the_task_list_reads_owners_in_the_same_query(staff, tasks, django_assert_max_num_queries):
    Task.objects.bulk_create(
        Task(owner=tasks["garden"].owner, title=f"Task {number}") for number in range(20)
    )

    # Session, staff user, count, page: a query per owner would add 23.
    with django_assert_max_num_queries(8):
        assert staff.get("/admin/tasks/task/").status_code == HTTPStatus.OK


def test_the_task_form_chooses_the_owner_by_autocomplete_not_a_select_of_every_user(
    staff, alice_user, bob_user
):
    response = staff.get("/admin/tasks/task/add/")

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    owner = re.search(r'<select name="owner".*?</select>', html, re.S).group()
    assert "admin-autocomplete" in owner
    assert "bob@example.com" not in owner


def test_staff_add_a_task_for_a_user(staff, alice_user):
    response = staff.post(
        "/admin/tasks/task/add/",
        {"owner": alice_user.pk, "title": "Call mum", "description": "", "priority": 2},
    )

    assert response.status_code == HTTPStatus.FOUND
    task = Task.objects.get(title="Call mum")
    assert (task.owner, task.completed) == (alice_user, False)


def test_staff_change_a_task(staff, tasks):
    task = tasks["groceries"]
    assert staff.get(f"/admin/tasks/task/{task.pk}/change/").status_code == HTTPStatus.OK

    response = staff.post(
        f"/admin/tasks/task/{task.pk}/change/",
        {
            "owner": task.owner.pk,
            "title": "Buy groceries today",
            "description": task.description,
            "priority": 2,
            "completed": "on",
        },
    )

    assert response.status_code == HTTPStatus.FOUND
    task.refresh_from_db()
    assert (task.title, task.completed) == ("Buy groceries today", True)


def test_the_owner_autocomplete_finds_users_by_email(staff, alice_user, bob_user):
    response = staff.get(
        "/admin/autocomplete/",
        {
            "app_label": "tasks",
            "model_name": "task",
            "field_name": "owner",
            "term": "alice",
        },
    )

    assert response.status_code == HTTPStatus.OK
    assert response.json()["results"] == [
        {"id": str(alice_user.pk), "text": "Alice <alice@example.com (unverified)> · id alice-sub"}
    ]


def test_the_user_list_searches_by_email_and_sub(staff, alice_user, bob_user):
    response = staff.get("/admin/authbridge/user/", {"q": "bob-sub"})

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "bob@example.com" in html
    assert "alice@example.com" not in html


def test_the_user_list_shows_the_better_auth_id_beside_email_and_name_and_marks_unverified_emails(
    staff, alice_user, bob_user
):
    User.objects.filter(pk=bob_user.pk).update(email_verified=True)

    response = staff.get("/admin/authbridge/user/")

    assert response.status_code == HTTPStatus.OK
    rows = {
        row[0]: row[1:]
        for row in re.findall(
            r'<th class="field-sub"><a href="[^"]+">([^<]+)</a></th><td class="field-email">([^<]*)</td>'
            r'<td class="field-email_verified"><img src="[^"]+icon-(yes|no)\.svg" alt="(?:True|False)"></td>'
            r'<td class="field-name">([^<]*)</td>',
            response.content.decode(),
        )
    }
    assert rows["alice-sub"] == ("alice@example.com", "no", "Alice")
    assert rows["bob-sub"] == ("bob@example.com", "yes", "Bob")


def test_the_user_list_finds_a_user_by_their_exact_better_auth_id(staff, alice_user, bob_user):
    response = staff.get("/admin/authbridge/user/", {"q": "alice-sub"})

    assert response.status_code == HTTPStatus.OK
    assert "alice@example.com" in response.content.decode()
    assert "bob@example.com" not in response.content.decode()


def test_owners_carrying_the_same_email_are_told_apart_by_id_and_verification(staff, alice_user):
    alice_user.email_verified = True
    alice_user.save()
    mallory = User.objects.create(
        username="mallory-sub", sub="mallory-sub", email="alice@example.com", name="Alice"
    )
    Task.objects.create(owner=alice_user, title="Alice's own")
    Task.objects.create(owner=mallory, title="Mallory's, under Alice's email")

    response = staff.get("/admin/tasks/task/", {"owner": "alice@example.com"})

    html = response.content.decode()
    owners = re.findall(r'<td class="field-owner nowrap">([^<]+)</td>', html)
    assert sorted(owners) == [
        "Alice &lt;alice@example.com (unverified)&gt; · id mallory-sub",
        "Alice &lt;alice@example.com&gt; · id alice-sub",
    ]
    matches = re.search(r'<ul class="owner-matches">(.*?)</ul>', html, re.S).group(1)
    assert re.findall(r"<li>([^<]+)</li>", matches) == [
        "Alice &lt;alice@example.com&gt; · id alice-sub",
        "Alice &lt;alice@example.com (unverified)&gt; · id mallory-sub",
    ]


def test_the_tag_list_names_owners_with_their_id(staff, alice_user):
    Tag.objects.create(owner=alice_user, name="Work")

    response = staff.get("/admin/tasks/tag/")

    assert "Alice &lt;alice@example.com (unverified)&gt; · id alice-sub" in response.content.decode()


def test_the_user_list_filters_staff(staff, alice_user):
    response = staff.get("/admin/authbridge/user/", {"is_staff__exact": "1"})

    assert response.status_code == HTTPStatus.OK
    assert "admin@example.com" in response.content.decode()
    assert "alice@example.com" not in response.content.decode()


def test_staff_open_the_user_add_and_change_forms(staff, alice_user):
    assert staff.get("/admin/authbridge/user/add/").status_code == HTTPStatus.OK
    response = staff.get(f"/admin/authbridge/user/{alice_user.pk}/change/")

    assert response.status_code == HTTPStatus.OK
    assert "alice-sub" in response.content.decode()


def test_staff_add_a_staff_user(staff):
    response = staff.post(
        "/admin/authbridge/user/add/",
        {
            "username": "carol",
            "usable_password": "true",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )

    assert response.status_code == HTTPStatus.FOUND
    carol = User.objects.get(username="carol")
    assert carol.sub is None
    assert carol.check_password(PASSWORD)


@pytest.mark.parametrize("path", ["/api/v1/tasks", "/api/v1/me"])
def test_an_admin_session_does_not_authenticate_the_api(staff, path):
    response = staff.get(path)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["code"] == "not_authenticated"


def test_the_task_list_filters_by_priority_and_overdue_and_searches_by_tag(staff, tasks):
    past = timezone.now() - timezone.timedelta(days=1)
    Task.objects.filter(pk=tasks["groceries"].pk).update(priority=Priority.HIGH, due_at=past)
    Task.objects.filter(pk=tasks["taxes"].pk).update(due_at=past)  # completed: not overdue
    tasks["garden"].tags.add(Tag.objects.create(owner=tasks["garden"].owner, name="Outdoors"))

    assert titles_listed(staff.get("/admin/tasks/task/", {"priority__exact": "3"})) == {"Buy groceries"}
    assert titles_listed(staff.get("/admin/tasks/task/", {"overdue": "yes"})) == {"Buy groceries"}
    assert titles_listed(staff.get("/admin/tasks/task/", {"overdue": "no"})) == {
        "File taxes",
        "Water the garden",
    }
    assert titles_listed(staff.get("/admin/tasks/task/", {"q": "outdoors"})) == {"Water the garden"}
    assert titles_listed(staff.get("/admin/tasks/task/", {"due_at__isnull": "True"})) == {"Water the garden"}


def test_the_task_list_reads_tags_in_one_query(staff, tasks, django_assert_max_num_queries):
    owner = tasks["garden"].owner
    for number in range(20):
        task = Task.objects.create(owner=owner, title=f"Task {number}")
        task.tags.add(Tag.objects.create(owner=owner, name=f"tag {number}"))

    # As above, plus one query for the tags of the whole page.
    with django_assert_max_num_queries(9):
        response = staff.get("/admin/tasks/task/")

    assert "tag 19" in response.content.decode()


def test_staff_edit_a_tasks_tags_among_its_owners_own(staff, tasks, bob_user):
    task = tasks["groceries"]
    Tag.objects.create(owner=task.owner, name="Shopping")
    Tag.objects.create(owner=bob_user, name="Errands")

    response = staff.post(
        f"/admin/tasks/task/{task.pk}/change/",
        {
            "owner": task.owner.pk,
            "title": task.title,
            "description": task.description,
            "priority": 2,
            "tag_names": "SHOPPING\nerrands\n\n",
        },
    )

    assert response.status_code == HTTPStatus.FOUND
    assert sorted((tag.name, tag.owner) for tag in task.tags.all()) == [
        ("Shopping", task.owner),
        ("errands", task.owner),
    ]
    assert staff.get(f"/admin/tasks/task/{task.pk}/change/").content.decode().count("Shopping") >= 1


def test_the_task_form_refuses_bad_tags(staff, tasks):
    task = tasks["groceries"]

    response = staff.post(
        f"/admin/tasks/task/{task.pk}/change/",
        {"owner": task.owner.pk, "title": task.title, "priority": 2, "tag_names": "x" * 51},
    )

    assert response.status_code == HTTPStatus.OK
    assert "Each tag must be 1 to 50 characters long" in response.content.decode()


def test_completing_a_task_in_the_admin_stamps_completed_at(staff, tasks):
    task = tasks["groceries"]

    staff.post(
        f"/admin/tasks/task/{task.pk}/change/",
        {"owner": task.owner.pk, "title": task.title, "priority": 2, "completed": "on"},
    )

    task.refresh_from_db()
    assert task.completed and task.completed_at is not None


def test_staff_manage_a_users_tags(staff, alice_user, bob_user):
    work = Tag.objects.create(owner=alice_user, name="Work")
    Tag.objects.create(owner=bob_user, name="Garden")

    listed = staff.get("/admin/tasks/tag/", {"owner": "alice@example.com"})
    assert "Work" in listed.content.decode() and "Garden" not in listed.content.decode()
    renamed = staff.post(f"/admin/tasks/tag/{work.pk}/change/", {"owner": alice_user.pk, "name": "Job"})
    assert renamed.status_code == HTTPStatus.FOUND
    Tag.objects.create(owner=alice_user, name="Home")
    clash = staff.post(f"/admin/tasks/tag/{work.pk}/change/", {"owner": alice_user.pk, "name": "HOME"})
    assert clash.status_code == HTTPStatus.OK  # the form shows the case-insensitive clash; no 500
    assert Tag.objects.get(pk=work.pk).name == "Job"


def test_a_tag_cannot_be_moved_to_another_user(staff, alice_user, bob_user):
    work = Tag.objects.create(owner=alice_user, name="Work")

    moved = staff.post(f"/admin/tasks/tag/{work.pk}/change/", {"owner": bob_user.pk, "name": "Work"})

    assert moved.status_code == HTTPStatus.FOUND
    assert Tag.objects.get(pk=work.pk).owner == alice_user
