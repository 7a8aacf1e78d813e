"""Models that exercise BaseModel in the unit tests (not shipped)."""

from django.db import models

from shared_core.models import BaseModel, IdempotentModel, SoftDeleteModel, live_unique


class Author(BaseModel):
    name = models.CharField(max_length=100)
    email = models.EmailField()

    class Meta:
        constraints = [live_unique("email")]


class Book(BaseModel):
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    title = models.CharField(max_length=100)


class Chapter(BaseModel):
    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="chapters")
    number = models.PositiveIntegerField()


class Sticker(BaseModel):
    """A SET_NULL child: soft delete must leave its key alone."""

    book = models.ForeignKey(Book, on_delete=models.SET_NULL, null=True, related_name="stickers")


class Review(models.Model):
    """A plain (non-BaseModel) CASCADE child: soft delete must leave it alone."""

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="reviews")
    text = models.TextField()


class Node(BaseModel):
    """A self-referencing tree, for cascades that meet the same model again."""

    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, related_name="children")
    partner = models.ForeignKey("self", on_delete=models.CASCADE, null=True, related_name="+")


class Anthology(Book):
    """Multi-table inheritance: is_deleted lives on the parent's table."""

    editor = models.CharField(max_length=100)


class Receipt(IdempotentModel, BaseModel):
    """Created at most once per caller and Idempotency-Key (shared_core.api.create_once)."""

    amount = models.PositiveIntegerField()
    note = models.TextField(blank=True)

    class Meta:
        constraints = [live_unique("idempotency_caller", "idempotency_key")]


class Specimen(BaseModel):
    """One of every concrete Django field type that a service sets (ImageField is FileField's, minus Pillow)."""

    label = models.CharField(max_length=50, default="")
    big = models.BigIntegerField(default=0)
    blob = models.BinaryField(default=b"")
    flag = models.BooleanField(default=False)
    day = models.DateField(null=True)
    moment = models.DateTimeField(null=True)
    amount = models.DecimalField(max_digits=9, decimal_places=2, null=True)
    span = models.DurationField(null=True)
    email = models.EmailField(default="")
    upload = models.FileField(upload_to="specimens/", blank=True, default="")
    path = models.FilePathField(path="/tmp", blank=True, default="")
    ratio = models.FloatField(default=0.0)
    address = models.GenericIPAddressField(null=True)
    number = models.IntegerField(default=0)
    data = models.JSONField(default=dict)
    positive_big = models.PositiveBigIntegerField(default=0)
    positive = models.PositiveIntegerField(default=0)
    positive_small = models.PositiveSmallIntegerField(default=0)
    slug = models.SlugField(default="")
    small = models.SmallIntegerField(default=0)
    text = models.TextField(default="")
    clock = models.TimeField(null=True)
    url = models.URLField(default="")
    token = models.UUIDField(null=True)
    author = models.ForeignKey(Author, on_delete=models.SET_NULL, null=True, related_name="+")
    twin = models.OneToOneField(Author, on_delete=models.SET_NULL, null=True, related_name="+")


class Ledger(SoftDeleteModel):
    """Soft delete alone, on an integer-keyed table with no timestamps: a table that predates shared_core."""

    name = models.CharField(max_length=50)


class Entry(SoftDeleteModel):
    """A soft-deleting CASCADE child of Ledger, integer-keyed too."""

    ledger = models.ForeignKey(Ledger, on_delete=models.CASCADE, related_name="entries")
    amount = models.IntegerField(default=0)


class Posting(BaseModel):
    """A BaseModel CASCADE child of a model without timestamps: it is stamped, its parent is not."""

    ledger = models.ForeignKey(Ledger, on_delete=models.CASCADE, related_name="postings")
