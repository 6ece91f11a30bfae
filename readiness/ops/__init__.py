"""What production uses to set up its engines: Maven artifacts, Kafka topics."""
