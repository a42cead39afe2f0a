# Multi-stage: build the wheel (compiler + headers), install it into a slim runtime image.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends g++ libjpeg62-turbo-dev libpng-dev libgrpc++-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN pip wheel --no-deps -w /wheels .

FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libjpeg62-turbo libpng16-16 libgrpc++1.51 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home ovfast
COPY --from=build /wheels /wheels
# [storage]: s3:// gs:// az:// model paths, as the OVMS image serves them (docs/storage.md)
RUN pip install --no-cache-dir "$(ls /wheels/*.whl)[storage]" && rm -rf /wheels
USER ovfast
EXPOSE 9000 8000
ENTRYPOINT ["ovfast"]
CMD ["--port", "9000", "--rest_port", "8000"]
