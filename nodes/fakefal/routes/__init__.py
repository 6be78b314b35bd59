"""What each of the fake's hosts answers: the queue, storage, the server proxy, the Platform API."""
