# What a team does without a shared base: its own Django, requests, urllib3 and gunicorn per service,
# on the same Debian root. SERVICE makes each install its own layer, as four separate teams' images would be.
ARG ROOT_IMAGE=shared-core/root:trixie
FROM ${ROOT_IMAGE}
ARG SERVICE
COPY requirements.lock /tmp/requirements.lock
COPY wheelhouse/ /tmp/wheels/
RUN echo "${SERVICE}" > /etc/service-name \
 && python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --quiet --no-index --find-links /tmp/wheels --require-hashes --no-deps -r /tmp/requirements.lock \
 && rm -rf /tmp/wheels
COPY shared_core/ /opt/shared/shared_core/
COPY service/ /app/
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/opt/shared
