import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

/** A consumer with client.rack reading partition 0 of a topic from the beginning until it
 *  has `count` records: prints how many it got and how many distinct offsets. */
public class RackConsumer {
    public static void main(String[] args) {
        String bs = args[0], topic = args[1], rack = args[2];
        int count = Integer.parseInt(args[3]);
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bs);
        cp.put("client.rack", rack);
        cp.put("enable.auto.commit", "false");
        cp.put("key.deserializer", ByteArrayDeserializer.class.getName());
        cp.put("value.deserializer", ByteArrayDeserializer.class.getName());
        List<Long> offsets = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long deadline = System.currentTimeMillis() + 60000;
            while (offsets.size() < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) offsets.add(r.offset());
            }
        }
        System.out.println("consumed " + offsets.size() + " distinct " + new HashSet<>(offsets).size());
        System.exit(offsets.size() == count ? 0 : 1);
    }
}
