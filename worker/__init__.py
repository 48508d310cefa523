"""Celery tasks and the engines only workers import (onnxruntime, skops, boto3 for verification, ...)."""
