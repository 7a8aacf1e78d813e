from django.contrib import admin

from tests.testapp.models import Author

admin.site.register(Author)
