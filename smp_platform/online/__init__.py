"""The request-time path, below the HTTP service and beside the batch verbs (never importing
them): draft parsing and scoring, the author index, push, the feature block and the compiled
scorer. No Prefect."""
