"""Organization webhooks: events written as durable deliveries in the transaction of the fact
(:mod:`.events`), JSON bodies (:mod:`.payload`), the destination rule (:mod:`.destination`) and
the delivery worker every hive process runs (:mod:`.worker`)."""
