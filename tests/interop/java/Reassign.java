import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

/** Admin.alterPartitionReassignments / listPartitionReassignments against a 3-broker
 * cluster: a partition of RF 1 moved to RF 3 with its records, the errors of bad targets,
 * a refused replication factor change (KIP-860), a cancel with nothing to cancel. Prints
 * "name: value" lines for the test to check. */
public class Reassign {
    static String outcome(KafkaFuture<Void> future) throws InterruptedException {
        try {
            future.get();
            return "ok";
        } catch (ExecutionException e) {
            return e.getCause().getClass().getSimpleName();
        }
    }

    public static void main(String[] args) throws Exception {
        String bs = args[0];
        String topic = "reassign-" + System.nanoTime();
        int n = 1000;
        Properties ap = new Properties();
        ap.put("bootstrap.servers", bs);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(topic, Map.of(0, List.of(0), 1, List.of(1))))).all().get();
            Properties pp = new Properties();
            pp.put("bootstrap.servers", bs);
            pp.put("acks", "all");
            pp.put("key.serializer", StringSerializer.class.getName());
            pp.put("value.serializer", StringSerializer.class.getName());
            try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
                for (int i = 0; i < n; i++) p.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i));
                p.flush();
            }
            TopicPartition p0 = new TopicPartition(topic, 0), p1 = new TopicPartition(topic, 1);
            TopicPartition p9 = new TopicPartition(topic, 9);
            Map<TopicPartition, Optional<NewPartitionReassignment>> moves = new LinkedHashMap<>();
            moves.put(p0, Optional.of(new NewPartitionReassignment(List.of(0, 1, 2))));
            moves.put(p1, Optional.of(new NewPartitionReassignment(List.of(1, 7))));
            moves.put(p9, Optional.of(new NewPartitionReassignment(List.of(0))));
            Map<TopicPartition, KafkaFuture<Void>> results = admin.alterPartitionReassignments(moves).values();
            System.out.println("move p0: " + outcome(results.get(p0)));
            System.out.println("move p1 to 1,7: " + outcome(results.get(p1)));
            System.out.println("move p9: " + outcome(results.get(p9)));
            long deadline = System.currentTimeMillis() + 30000;
            Map<TopicPartition, PartitionReassignment> ongoing;
            do {
                ongoing = admin.listPartitionReassignments(Set.of(p0, p1)).reassignments().get();
                if (!ongoing.isEmpty()) Thread.sleep(100);
            } while (!ongoing.isEmpty() && System.currentTimeMillis() < deadline);
            System.out.println("ongoing after catch-up: " + ongoing.size());
            var part = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().get(0);
            System.out.println("p0 replicas: " + part.replicas().stream().map(nd -> nd.id()).toList()
                    + " isr: " + part.isr().stream().map(nd -> nd.id()).sorted().toList());
            System.out.println("cancel p0: " + outcome(admin.alterPartitionReassignments(
                    Map.of(p0, Optional.empty())).values().get(p0)));
            AlterPartitionReassignmentsOptions fixedFactor = new AlterPartitionReassignmentsOptions()
                    .allowReplicationFactorChange(false);
            System.out.println("p1 to 1,2 at a fixed factor: " + outcome(admin.alterPartitionReassignments(
                    Map.of(p1, Optional.of(new NewPartitionReassignment(List.of(1, 2)))), fixedFactor).values().get(p1)));
            System.out.println("p1 to 2 at a fixed factor: " + outcome(admin.alterPartitionReassignments(
                    Map.of(p1, Optional.of(new NewPartitionReassignment(List.of(2)))), fixedFactor).values().get(p1)));
        }
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bs);
        cp.put("group.id", "reassign-" + System.nanoTime());
        cp.put("auto.offset.reset", "earliest");
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        Set<String> seen = new HashSet<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            c.assign(List.of(new TopicPartition(topic, 0)));
            long deadline = System.currentTimeMillis() + 30000;
            while (seen.size() < n && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) seen.add(r.value());
            }
        }
        System.out.println("consumed: " + seen.size() + " of " + n);
    }
}
