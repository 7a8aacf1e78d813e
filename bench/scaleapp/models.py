"""The same table twice: as a BaseModel and as a plain model, for the soft-delete-at-scale benchmark."""

from django.db import models
from django.db.models import Q

from shared_core.models import BaseModel


class LiveRow(BaseModel):
    code = models.CharField(max_length=20, db_index=True)

    class Meta:
        app_label = "scaleapp"
        # Newest live rows: a partial index over live rows only keeps this query as cheap as on a plain table.
        indexes = [models.Index(fields=["-created_at"], condition=Q(is_deleted=False), name="scale_live_newest")]


class PlainRow(models.Model):
    id = models.UUIDField(primary_key=True)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField()
    code = models.CharField(max_length=20, db_index=True)

    class Meta:
        app_label = "scaleapp"
