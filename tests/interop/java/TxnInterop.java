import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

/** Transactions with the Java client: commit and abort, read_committed and read_uncommitted
 *  consumers, and a consume-transform-produce step with sendOffsetsToTransaction. */
public class TxnInterop {
    static Properties producerProps(String bs, String txnId) {
        Properties pp = new Properties();
        pp.put("bootstrap.servers", bs);
        pp.put("transactional.id", txnId);
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        return pp;
    }

    static Properties consumerProps(String bs, String group, String isolation) {
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bs);
        cp.put("group.id", group);
        cp.put("auto.offset.reset", "earliest");
        cp.put("enable.auto.commit", "false");
        cp.put("isolation.level", isolation);
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        return cp;
    }

    static List<String> readAll(String bs, String topic, String isolation, int want) {
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(bs, "jr-" + System.nanoTime(), isolation))) {
            c.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 30000;
            long quiet = Long.MAX_VALUE;
            while (System.currentTimeMillis() < deadline && System.currentTimeMillis() < quiet) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) out.add(r.value());
                if (out.size() >= want && quiet == Long.MAX_VALUE) quiet = System.currentTimeMillis() + 1000;
            }
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        String bs = args[0];
        String in = "jtx-in-" + System.nanoTime(), out = "jtx-out-" + System.nanoTime();
        Properties ap = new Properties();
        ap.put("bootstrap.servers", bs);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(in, 1, (short) 3), new NewTopic(out, 1, (short) 3))).all().get();
        }
        try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(bs, "java-src-" + System.nanoTime()))) {
            p.initTransactions();
            p.beginTransaction();
            for (int i = 0; i < 100; i++) p.send(new ProducerRecord<>(in, "k" + i, "v" + i));
            p.commitTransaction();
            p.beginTransaction();
            for (int i = 0; i < 50; i++) p.send(new ProducerRecord<>(in, "a" + i, "aborted" + i));
            p.flush();
            p.abortTransaction();
        }
        System.out.println("read_committed in: " + readAll(bs, in, "read_committed", 100).size());
        System.out.println("read_uncommitted in: " + readAll(bs, in, "read_uncommitted", 150).size());

        String group = "jtx-g-" + System.nanoTime();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(bs, group, "read_committed"));
             KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(bs, "java-etl-" + System.nanoTime()))) {
            p.initTransactions();
            c.subscribe(List.of(in));
            int moved = 0;
            long deadline = System.currentTimeMillis() + 30000;
            while (moved < 100 && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> records = c.poll(Duration.ofMillis(200));
                if (records.isEmpty()) continue;
                p.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (ConsumerRecord<String, String> r : records) {
                    p.send(new ProducerRecord<>(out, r.key(), r.value().toUpperCase()));
                    offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                    moved++;
                }
                p.sendOffsetsToTransaction(offsets, c.groupMetadata());
                p.commitTransaction();
            }
            System.out.println("moved " + moved);
        }
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(bs, group, "read_committed"))) {
            OffsetAndMetadata committed = c.committed(Set.of(new TopicPartition(in, 0))).get(new TopicPartition(in, 0));
            System.out.println("group committed: " + (committed == null ? -1 : committed.offset()));
        }
        List<String> result = readAll(bs, out, "read_committed", 100);
        System.out.println("read_committed out: " + result.size() + " distinct " + new HashSet<>(result).size());
    }
}
