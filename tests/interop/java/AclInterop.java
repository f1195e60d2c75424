import java.io.StringReader;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.errors.GroupAuthorizationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A SCRAM user without ACLs is refused: TopicAuthorizationException on send and on poll
 * (the consumer's metadata of the topic is refused first); with WRITE/READ on the topic,
 * GroupAuthorizationException on poll; with READ on the group too it produces and
 * consumes. The admin (a super user) grants, then describes and deletes the user's ACLs.
 *
 * Arguments: bootstrap, admin client properties, user client properties, topic.
 */
public class AclInterop {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        Properties admin = props(bootstrap, args[1]);
        Properties user = props(bootstrap, args[2]);
        String topic = args[3];
        String group = topic + "-group";
        String principal = "User:" + user.getProperty("sasl.jaas.config").replaceAll(".*username=\"([^\"]+)\".*", "$1");

        Properties refusedProducer = producerProps(user);
        // Idempotence would need IDEMPOTENT_WRITE (or WRITE on some topic) first.
        refusedProducer.put("enable.idempotence", "false");
        refusedProducer.put("max.block.ms", "10000");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(refusedProducer)) {
            producer.send(new ProducerRecord<>(topic, "k", "v")).get();
            System.out.println("produce: accepted");
        } catch (ExecutionException e) {
            System.out.println("produce refused: " + e.getCause().getClass().getSimpleName());
        }
        tryConsume(user, topic, group);   // the topic first: its metadata is refused

        try (Admin client = Admin.create(admin)) {
            List<AclBinding> grants = new ArrayList<>();
            for (AclOperation op : List.of(AclOperation.WRITE, AclOperation.READ)) {
                grants.add(new AclBinding(new ResourcePattern(ResourceType.TOPIC, topic, PatternType.LITERAL),
                        new AccessControlEntry(principal, "*", op, AclPermissionType.ALLOW)));
            }
            client.createAcls(grants).all().get();
        }
        tryConsume(user, topic, group);   // now the group
        try (Admin client = Admin.create(admin)) {
            client.createAcls(List.of(new AclBinding(new ResourcePattern(ResourceType.GROUP, group, PatternType.LITERAL),
                    new AccessControlEntry(principal, "*", AclOperation.READ, AclPermissionType.ALLOW)))).all().get();
        }

        try (KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps(user))) {
            for (int i = 0; i < 10; i++) {
                producer.send(new ProducerRecord<>(topic, "k" + i, "v" + i)).get();
            }
            System.out.println("produced 10");
        }
        int consumed = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps(user, group))) {
            consumer.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 30000;
            while (consumed < 10 && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(500));
                consumed += records.count();
            }
            consumer.commitSync();
        }
        System.out.println("consumed " + consumed);

        try (Admin client = Admin.create(admin)) {
            AclBindingFilter mine = new AclBindingFilter(ResourcePatternFilter.ANY,
                    new AccessControlEntryFilter(principal, null, AclOperation.ANY, AclPermissionType.ANY));
            Collection<AclBinding> described = client.describeAcls(mine).values().get();
            Collection<AclBinding> deleted = client.deleteAcls(List.of(mine)).all().get();
            System.out.println("described " + described.size() + ", deleted " + deleted.size());
        }
    }

    static void tryConsume(Properties user, String topic, String group) {
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps(user, group))) {
            consumer.subscribe(List.of(topic));
            consumer.poll(Duration.ofSeconds(10));
            System.out.println("consume: accepted");
        } catch (GroupAuthorizationException | TopicAuthorizationException e) {
            System.out.println("consume refused: " + e.getClass().getSimpleName());
        }
    }

    static Properties props(String bootstrap, String text) throws Exception {
        Properties p = new Properties();
        p.load(new StringReader(text));
        p.put("bootstrap.servers", bootstrap);
        return p;
    }

    static Properties producerProps(Properties base) {
        Properties p = new Properties();
        p.putAll(base);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("acks", "all");
        return p;
    }

    static Properties consumerProps(Properties base, String group) {
        Properties p = new Properties();
        p.putAll(base);
        p.put("group.id", group);
        p.put("auto.offset.reset", "earliest");
        p.put("enable.auto.commit", "false");
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        return p;
    }
}
