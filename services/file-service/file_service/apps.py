from django.apps import AppConfig
from django.http import multipartparser

#: The most bytes of headers one multipart part may carry (Django's own cap is 1 KiB).
MAX_PART_HEADER_BYTES = 8 * 1024


class FileServiceConfig(AppConfig):
    name = "file_service"

    def ready(self) -> None:
        # A part's headers hold its file name: Django's 1 KiB cap refuses a 1,000-character name as
        # "malformed" before the view can cut it to 255. 8 KiB keeps the guard and takes such a name.
        multipartparser.MAX_TOTAL_HEADER_SIZE = max(multipartparser.MAX_TOTAL_HEADER_SIZE, MAX_PART_HEADER_BYTES)
