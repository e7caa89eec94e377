"""Celery app + tasks for the cancellation benchmark (Redis broker and result backend, db 1)."""
import common
from celery import Celery
from celery.contrib.abortable import AbortableTask

URL = f"redis://{common.REDIS_HOST}:{common.REDIS_PORT}/1"
app = Celery("celery_tasks", broker=URL, backend=URL)
app.conf.update(
    worker_prefetch_multiplier=1,
    task_acks_late=False,
    task_track_started=True,          # so AbortableTask has a STARTED state to overwrite
    broker_connection_retry_on_startup=True,
    result_expires=600,
    worker_send_task_events=False,
)


@app.task(name="long_job")
def long_job(key, duration):
    return common.run_loop_sync(key, duration)


@app.task(name="abortable_job", bind=True, base=AbortableTask)
def abortable_job(self, key, duration):
    # Cooperative check recommended by celery.contrib.abortable: poll is_aborted()
    # (one result-backend GET); here on every iteration (~1 ms).
    return common.run_loop_sync(key, duration, check=self.is_aborted)


@app.task(name="trivial")
def trivial(key):
    common.trivial_job(key)
