import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.serialization.*;

/** A group consumer of many partitions: catches up, stays idle (incremental fetches with
 *  nothing new), then reads what is produced while it polls. */
public class FetchSessionInterop {
    static void produce(String bs, String topic, int from, int count) {
        Properties pp = new Properties();
        pp.put("bootstrap.servers", bs);
        pp.put("acks", "all");
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            for (int i = from; i < from + count; i++) p.send(new ProducerRecord<>(topic, "k" + i, "v" + i));
            p.flush();
        }
    }

    static void pollUntil(KafkaConsumer<String, String> c, Set<String> seen, int want, long ms) {
        long deadline = System.currentTimeMillis() + ms;
        while (seen.size() < want && System.currentTimeMillis() < deadline) {
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) seen.add(r.value());
        }
    }

    public static void main(String[] args) throws Exception {
        String bs = args[0], topic = args[1];
        int n = Integer.parseInt(args[2]);
        long idleMs = Long.parseLong(args[3]);
        produce(bs, topic, 0, n);
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bs);
        cp.put("group.id", "fsessions-" + System.nanoTime());
        cp.put("auto.offset.reset", "earliest");
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        Set<String> seen = new HashSet<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            c.subscribe(List.of(topic));
            pollUntil(c, seen, n, 60000);
            System.out.println("caught up " + seen.size() + " partitions " + c.assignment().size());
            System.out.flush();
            pollUntil(c, seen, n + 1, idleMs);
            System.out.println("idle new " + (seen.size() - n));
            System.out.flush();
            produce(bs, topic, n, n);
            pollUntil(c, seen, 2 * n, 60000);
        }
        System.out.println("consumed " + seen.size() + " of " + (2 * n));
        System.exit(seen.size() == 2 * n ? 0 : 1);
    }
}
