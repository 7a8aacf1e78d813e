"""System checks that catch BaseModel misuse."""

from django.db import models
from django.test.utils import isolate_apps

from shared_core._ops.checks import check_soft_delete_models
from shared_core.models import BaseModel, IdempotentModel, SoftDeleteManager, live_unique


def ids_for(model: type[models.Model]) -> list[str]:
    config = model._meta.apps.get_app_config("testapp")
    return [m.id for m in check_soft_delete_models(app_configs=[config]) if m.obj is model]


@isolate_apps("tests.testapp")
def test_plain_default_manager_is_an_error():
    """A BaseModel whose objects is a plain Manager is reported as shared_core.E001."""

    class Leaky(BaseModel):
        objects = models.Manager()

        class Meta:
            app_label = "testapp"

    assert ids_for(Leaky) == ["shared_core.E001"]


@isolate_apps("tests.testapp")
def test_filtering_manager_in_migrations_is_an_error():
    """A filtering SoftDeleteManager with use_in_migrations is reported as shared_core.E002."""

    class MigratingManager(SoftDeleteManager):
        use_in_migrations = True

    class Hidden(BaseModel):
        objects = MigratingManager()

        class Meta:
            app_label = "testapp"

    assert ids_for(Hidden) == ["shared_core.E002"]


@isolate_apps("tests.testapp")
def test_unique_field_is_a_warning_and_live_unique_is_clean():
    """unique=True on a BaseModel warns (shared_core.W001); live_unique() does not."""

    class Plain(BaseModel):
        code = models.CharField(max_length=5, unique=True)

        class Meta:
            app_label = "testapp"

    class Good(BaseModel):
        code = models.CharField(max_length=5)

        class Meta:
            app_label = "testapp"
            constraints = [live_unique("code")]

    assert ids_for(Plain) == ["shared_core.W001"]
    assert ids_for(Good) == []


@isolate_apps("tests.testapp")
def test_unconditional_unique_constraint_and_unique_together_warn():
    """An unconditional UniqueConstraint and unique_together on a BaseModel each warn (shared_core.W001)."""

    class Constrained(BaseModel):
        code = models.CharField(max_length=5)

        class Meta:
            app_label = "testapp"
            constraints = [models.UniqueConstraint(fields=["code"], name="constrained_code_uniq")]

    class Together(BaseModel):
        code = models.CharField(max_length=5)
        kind = models.CharField(max_length=5)

        class Meta:
            app_label = "testapp"
            unique_together = [("code", "kind")]

    class Conditional(BaseModel):
        code = models.CharField(max_length=5)

        class Meta:
            app_label = "testapp"
            constraints = [
                models.UniqueConstraint(fields=["code"], condition=models.Q(is_deleted=False), name="cond_code_uniq")
            ]

    assert ids_for(Constrained) == ["shared_core.W001"]
    assert ids_for(Together) == ["shared_core.W001"]
    assert ids_for(Conditional) == []
    (message,) = check_soft_delete_models(app_configs=[Together._meta.apps.get_app_config("testapp")])[-1:]
    assert "unique_together" in message.msg and 'live_unique("code", "kind")' in message.hint


@isolate_apps("tests.testapp")
def test_idempotent_model_keys_must_be_unique_per_caller():
    """An IdempotentModel whose keys are unique across callers, or not unique at all, is shared_core.E003."""

    class Unscoped(IdempotentModel, BaseModel):
        class Meta:
            app_label = "testapp"
            constraints = [live_unique("idempotency_key")]

    class Unbounded(IdempotentModel, BaseModel):
        class Meta:
            app_label = "testapp"

    class Scoped(IdempotentModel, BaseModel):
        class Meta:
            app_label = "testapp"
            constraints = [live_unique("idempotency_caller", "idempotency_key")]

    assert ids_for(Unscoped) == ["shared_core.E003"]
    assert ids_for(Unbounded) == ["shared_core.E003"]
    assert ids_for(Scoped) == []
